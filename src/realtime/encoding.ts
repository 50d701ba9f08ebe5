/**
 * Per-socket payload encoding chosen with `conf`. IMKIT's Flutter SDK asks for base64 and
 * drops anything else; the Vue SDK never asks and expects plain JSON.
 */
export type Encoding = 'json' | 'base64';

export const ENCODINGS: readonly Encoding[] = ['json', 'base64'];

/** One event argument as this encoding sends it: the value itself, or base64(UTF-8 JSON). */
export function encodeArg(encoding: Encoding, value: unknown): unknown {
  return encoding === 'json' ? value : Buffer.from(JSON.stringify(value ?? null), 'utf8').toString('base64');
}

/**
 * Sockets join one engine topic per bus topic and encoding, so a room event is serialised once
 * per encoding and handed to the transport's native publish.
 */
export function engineTopic(busTopic: string, encoding: Encoding): string {
  return encoding === 'json' ? busTopic : `${busTopic}#b64`;
}

/** The bus topic of an engine topic joined in `encoding` (engineTopic's inverse). */
export function busTopic(engineTopicName: string, encoding: Encoding): string {
  return encoding === 'json' ? engineTopicName : engineTopicName.slice(0, -'#b64'.length);
}

export const encodingIndex = (encoding: Encoding): 0 | 1 => (encoding === 'json' ? 0 : 1);
