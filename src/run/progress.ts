/**
 * A progress line: redrawn in place on a TTY, plain log lines (about every 10%) otherwise, so CI
 * logs stay short and a terminal shows live progress.
 */
export interface Progress {
  update(done: number, info?: string): void;
  finish(info?: string): void;
}

export function progress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  const start = performance.now();
  let lastDecile = -1;
  const line = (done: number, info?: string) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const secs = (performance.now() - start) / 1000;
    const eta = frac > 0 && frac < 1 ? ` eta ${((secs * (1 - frac)) / frac).toFixed(0)}s` : "";
    if (tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      return `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${secs.toFixed(1)}s${eta}${info ? `  ${info}` : ""}`;
    }
    return `${label} ${done}/${total} (${(frac * 100).toFixed(0)}%) ${secs.toFixed(1)}s${info ? `  ${info}` : ""}`;
  };
  return {
    update(done, info) {
      if (tty) {
        stream.write(`\r\x1b[K${line(done, info)}`);
        return;
      }
      const decile = Math.floor((done / Math.max(1, total)) * 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        stream.write(`${line(done, info)}\n`);
      }
    },
    finish(info) {
      if (tty) stream.write(`\r\x1b[K${line(total, info)}\n`);
      else if (lastDecile < 10) stream.write(`${line(total, info)}\n`);
    },
  };
}
