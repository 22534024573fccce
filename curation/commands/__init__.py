"""One module per `curate` subcommand. Each defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``main(args) -> int``; cli.py discovers them."""
