"""The Activities and Agents resources: the canonical Activity definitions the store keeps
from the statements it receives, Person objects, and the statement formats (`ids`,
`canonical`) that use them."""
