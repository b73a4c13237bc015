"""Courses and classes: the containers of the learning hierarchy (course -> class ->
tutorial or study session -> interactions)."""
