"""The xAPI record store: statements (store, read, query, void), their anchoring state,
and the statements the learning service authors itself. The xAPI rules themselves
(validation, canonical form, formats) are the `services.learning.xapi` package."""
