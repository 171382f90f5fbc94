from medcurate.cli import main

main()
