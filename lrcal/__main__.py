from lrcal.cli import main

main()
