from siteml.cli import main

main()
