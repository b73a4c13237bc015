"""Actor linking: an external xAPI identity (an mbox, an LMS account) becomes a learner's,
so the statements an institution stores about it enter that learner's passport."""
