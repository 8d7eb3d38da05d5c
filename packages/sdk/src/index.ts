/** Corral SDK — the typed client lands with the SDK issue. */
export const SDK_VERSION = '0.1.0';
