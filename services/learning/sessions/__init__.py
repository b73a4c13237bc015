"""Tutorial sessions (human, AI or group tutoring) and study sessions (a learner alone)."""
