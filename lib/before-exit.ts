/**
 * `work`, or the error `stuck()` makes when the process runs out of work
 * first (Node's `beforeExit`): `work` then waits on a promise that nothing
 * is left to settle. Node itself exits with code 13 and a warning on such a
 * top-level await. For a process that runs nothing else (the CLI).
 */
export const settledBeforeExit = <T>(work: Promise<T>, stuck: () => Error): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const onBeforeExit = (): void => reject(stuck());
    process.once('beforeExit', onBeforeExit);
    work.then(
      value => {
        process.off('beforeExit', onBeforeExit);
        resolve(value);
      },
      (error: unknown) => {
        process.off('beforeExit', onBeforeExit);
        reject(error);
      },
    );
  });
