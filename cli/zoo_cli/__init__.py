"""zoo's command line: thin click commands that call the zoo library and render with rich."""
