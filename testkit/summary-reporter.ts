import type { Reporter, RunnerTask, RunnerTestFile } from "vitest";

/** Prints the plain closing line `N passed, N failed, N skipped` that CI reads in any language. */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const visit = (task: RunnerTask) => {
      if (task.type === "suite") {
        // A file or suite that failed before any test ran (import error, hook) counts as a failure.
        if (task.result?.state === "fail" && task.tasks.every((t) => !t.result || t.result.state === "skip")) counts.failed++;
        task.tasks.forEach(visit);
        return;
      }
      const state = task.result?.state;
      if (state === "pass") counts.passed++;
      else if (state === "fail") counts.failed++;
      else counts.skipped++;
    };
    files.forEach(visit);
    counts.failed += errors.length;
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
