/**
 * The engine's version. Caches of measured choices (the autotuner's, `engine/tune/`) are kept per version:
 * bump it whenever generated kernels change, so that a winner timed on the old kernels is measured again.
 *
 * @module
 */

/** The project version (semver). */
export const VERSION = "0.5.0";
