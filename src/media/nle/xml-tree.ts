/**
 * A small, format-neutral view of an XML document for the project parsers, built on
 * fast-xml-parser's ordered output. Attributes and text are decoded (entities expanded);
 * nothing is coerced to numbers, so paths like "001.mov" stay strings.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { DitsUserError } from '../../errors.js';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Concatenated direct text content, trimmed. */
  text: string;
}

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

/** Parses `xml`; throws DitsUserError('project-corrupt') when it is not well-formed. */
export function parseXml(xml: string, what: string): XmlElement[] {
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: true });
  if (valid !== true) {
    throw new DitsUserError('project-corrupt', `${what} is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  }
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    allowBooleanAttributes: true,
    processEntities: true,
    htmlEntities: false,
  });
  return convert(parser.parse(xml) as OrderedNode[]);
}

function convert(nodes: OrderedNode[]): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of nodes) {
    for (const key of Object.keys(node)) {
      if (key === ':@' || key === '#text' || key.startsWith('?') || key === '#comment') continue;
      const raw = node[key];
      const kids = Array.isArray(raw) ? (raw as OrderedNode[]) : [];
      const text = kids
        .filter((k) => '#text' in k)
        .map((k) => String(k['#text']))
        .join('')
        .trim();
      out.push({ name: key, attributes: { ...(node[':@'] ?? {}) }, children: convert(kids), text });
    }
  }
  return out;
}

/** Depth-first, document order. */
export function* walkElements(roots: XmlElement[]): Generator<XmlElement> {
  const stack: XmlElement[] = [...roots].reverse();
  while (stack.length > 0) {
    const el = stack.pop()!;
    yield el;
    for (let i = el.children.length - 1; i >= 0; i--) stack.push(el.children[i]!);
  }
}

export function childText(el: XmlElement, name: string): string | undefined {
  const child = el.children.find((c) => c.name === name);
  return child && child.text !== '' ? child.text : undefined;
}

/** The first element of the document (skipping declarations), if any. */
export function rootElement(roots: XmlElement[]): XmlElement | undefined {
  return roots.find((r) => !r.name.startsWith('!'));
}
