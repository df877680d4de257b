from intake.cli.main import main

raise SystemExit(main())
