/**
 * The bounds of a runtime declaration, shared by the check inside a service
 * (runtime.ts) and the check of a manifest on read (lib/manifest-shape.ts).
 * It imports nothing, so reading a manifest needs no lockdown.
 */

/** The most replicas a service may declare. */
export const MAX_REPLICAS = 64;

/** A TCP port a service may declare for HTTP: an integer from 1 to 65535. */
export const isPort = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;

/** A replica count a service may declare: an integer from 1 to MAX_REPLICAS. */
export const isReplicaCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_REPLICAS;
