"""Built-in search strategies, one module each; registered through the promptsearch.strategies entry points."""
