from traceedge.cli import main

main()
