"""Safety certifications and space verification."""
