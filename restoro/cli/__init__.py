"""The command line: typer commands that parse options, call the planner and render events."""
