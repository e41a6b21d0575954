from zoo_cli.main import main

main()
