"""The `bermo` subcommands: each module parses its flags, calls the library and reports."""
