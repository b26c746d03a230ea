"""Reading `.keras` files with errors that say what is wrong with them."""

import os
import zipfile


def load_keras_file(path, what="the file", compile=False):
    """`keras.saving.load_model(path)` for a file a user named.

    A missing file, one that is not a zip archive (truncated, or another
    kind of file) and one Keras cannot read each raise a ValueError naming
    the file and `what` it was given as (Keras's own message for a non-zip
    file is a misleading "File not found").
    """
    import keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"Expected {what} to name a .keras file. Received: {path!r} (no such file)")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"Expected {what} to be a .keras file (a zip archive). Received: {path!r}, which is "
            "not one: truncated, corrupt or another kind of file")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
        raise ValueError(f"Could not read {what} {path!r}: the .keras archive is corrupt "
                         f"({type(error).__name__}: {error})") from None
