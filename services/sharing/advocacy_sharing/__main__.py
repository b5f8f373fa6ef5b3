from advocacy_sharing.app import main

main()
