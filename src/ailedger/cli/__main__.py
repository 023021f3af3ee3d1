from ailedger.cli.app import main

main()
