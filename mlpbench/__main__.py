import sys

from mlpbench.run import main, print_help

if __name__ == "__main__":
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        print_help([a for a in sys.argv[1:] if not a.startswith("-")])
    else:
        main()
