/** Path router with `:param` segments; literal segments win over parameters. */
export interface Match<H> {
  handler: H;
  params: Record<string, string>;
}

interface Node<H> {
  literal: Map<string, Node<H>>;
  param?: { name: string; node: Node<H> };
  handlers: Map<string, H>;
}

const newNode = <H>(): Node<H> => ({ literal: new Map(), handlers: new Map() });

export class Router<H> {
  private root: Node<H> = newNode();

  add(method: string, pattern: string, handler: H): void {
    let node = this.root;
    for (const segment of pattern.split('/').filter(Boolean)) {
      if (segment.startsWith(':')) {
        const name = segment.slice(1);
        if (node.param && node.param.name !== name) throw new Error(`route ${pattern}: conflicting :${name}`);
        node.param ??= { name, node: newNode() };
        node = node.param.node;
      } else {
        let next = node.literal.get(segment);
        if (!next) node.literal.set(segment, (next = newNode()));
        node = next;
      }
    }
    if (node.handlers.has(method)) throw new Error(`route ${method} ${pattern} defined twice`);
    node.handlers.set(method, handler);
  }

  /** `undefined` = no such path; `'method'` = the path exists but not for this method. */
  match(method: string, path: string): Match<H> | 'method' | undefined {
    const params: Record<string, string> = {};
    const node = this.walk(this.root, path.split('/').filter(Boolean), 0, params);
    if (!node) return undefined;
    const handler = node.handlers.get(method);
    return handler ? { handler, params } : node.handlers.size > 0 ? 'method' : undefined;
  }

  private walk(node: Node<H>, segments: string[], i: number, params: Record<string, string>): Node<H> | undefined {
    if (i === segments.length) return node;
    const segment = segments[i]!;
    const literal = node.literal.get(segment);
    if (literal) {
      const found = this.walk(literal, segments, i + 1, params);
      if (found && found.handlers.size > 0) return found;
    }
    if (node.param) {
      let value: string;
      try {
        value = decodeURIComponent(segment);
      } catch {
        return undefined;
      }
      const found = this.walk(node.param.node, segments, i + 1, params);
      if (found) params[node.param.name] = value;
      return found;
    }
    return undefined;
  }
}
