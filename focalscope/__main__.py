from focalscope.cli import main

raise SystemExit(main())
