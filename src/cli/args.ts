import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line usage: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode, its errors turned into UsageErrors that name the command. */
export function parseOptions(command: string, argv: string[], options: OptionSpec): Record<string, string | boolean | undefined> {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`${command}: unexpected argument '${positionals[0]}'`);
    return values as Record<string, string | boolean | undefined>;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      // Node's messages are long-winded about "--" and positionals; the first sentence says it.
      const first = (err as Error).message.split('. ')[0]!.replace(/\.$/, '');
      throw new UsageError(`${command}: ${first}`);
    }
    throw err;
  }
}

/** An integer option in [min, max]; `fallback` when absent (undefined fallback: required). */
export function intOption(command: string, values: Record<string, unknown>, name: string, min: number, max: number, fallback?: number): number {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback === undefined) throw new UsageError(`${command}: --${name} is required`);
    return fallback;
  }
  const text = String(raw).replace(/_/g, '');
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${command}: --${name} must be an integer from ${min} to ${max}, not '${String(raw)}'`);
  }
  return n;
}

/** A positive number option (fractions allowed) in (0, max]. */
export function numberOption(command: string, values: Record<string, unknown>, name: string, max: number, fallback?: number): number {
  const raw = values[name];
  if (raw === undefined) {
    if (fallback === undefined) throw new UsageError(`${command}: --${name} is required`);
    return fallback;
  }
  const n = /^\d+(\.\d+)?$|^\.\d+$/.test(String(raw)) ? Number(raw) : NaN;
  if (!(n > 0) || n > max) throw new UsageError(`${command}: --${name} must be a number greater than 0 and at most ${max}, not '${String(raw)}'`);
  return n;
}

/** One of `choices`; `fallback` when absent. */
export function choiceOption<T extends string>(command: string, values: Record<string, unknown>, name: string, choices: readonly T[], fallback: T): T {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (!choices.includes(raw as T)) throw new UsageError(`${command}: --${name} must be one of ${choices.join(', ')}, not '${String(raw)}'`);
  return raw as T;
}

export function stringOption(command: string, values: Record<string, unknown>, name: string, fallback: string): string {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || raw.length === 0) throw new UsageError(`${command}: --${name} needs a value`);
  return raw;
}

/** A number option >= 0 (fractions allowed), at most max. */
export function nonNegativeOption(command: string, values: Record<string, unknown>, name: string, max: number, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = /^\d+(\.\d+)?$|^\.\d+$/.test(String(raw)) ? Number(raw) : NaN;
  if (!(n >= 0) || n > max) throw new UsageError(`${command}: --${name} must be a number from 0 to ${max}, not '${String(raw)}'`);
  return n;
}
