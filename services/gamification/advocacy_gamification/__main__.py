from advocacy_gamification.app import main

main()
