"""One exception class per kind of failure (style.md: clinicedc)."""


class InputError(ValueError):
    """A value, unit or case the rules cannot accept; the message is shown to the user."""


class DoseTransitionError(ValueError):
    """A dose change the state machine refuses; the message is shown to the user."""


class VersionConflict(InputError):
    """A form was read at a version of a course, plan or recommendation that is no longer
    current: someone else changed it in between (issue #12 item 4)."""
