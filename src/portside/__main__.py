from portside.cli import main

# Guarded: a process started with multiprocessing's spawn method imports this module again
# (as __mp_main__), and must not run the command a second time.
if __name__ == "__main__":
    main()
