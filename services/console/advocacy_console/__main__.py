from advocacy_console.app import main

main()
