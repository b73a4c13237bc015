"""LRS clients: the HTTP Basic credentials (key + secret) an LMS or authoring tool uses on
the xAPI resources, acting for the Keiko user who registered them."""
