/**
 * Preload (`node --import <this file>`) that records a process's peak memory and writes it to
 * $EDBX_MEMORY_SAMPLE_FILE when the process exits: `heap_used_max` (sampled every 10 ms),
 * `rss_max` (sampled) and `max_rss_kb` (the kernel's peak, getrusage). Used to show that exports
 * stream: the peak must not grow with the size of what was exported.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.EDBX_MEMORY_SAMPLE_FILE;
if (file) {
  let heapMax = 0;
  let rssMax = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    if (m.heapUsed > heapMax) heapMax = m.heapUsed;
    if (m.rss > rssMax) rssMax = m.rss;
  };
  const report = (): void => {
    sample();
    writeFileSync(file, JSON.stringify({ heap_used_max: heapMax, heap_used_now: process.memoryUsage().heapUsed, rss_max: rssMax, max_rss_kb: process.resourceUsage().maxRSS }));
  };
  setInterval(sample, 10).unref();
  process.on('exit', report);
  // SIGUSR2 (a long-lived server): write the peaks since the last SIGUSR2, then start over.
  process.on('SIGUSR2', () => {
    report();
    heapMax = 0;
    rssMax = 0;
  });
}
