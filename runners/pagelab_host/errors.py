"""User errors: reported as one line naming the file and the problem, never a traceback."""


class UserError(Exception):
    """Bad input from the user (a path, a file, an option)."""


def warn(msg):
    import sys
    sys.stderr.write("pagelab: warning: %s\n" % msg)
