from advocacy_notifications.app import main

main()
