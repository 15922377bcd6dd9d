import { Template } from "@huggingface/jinja";

/** An AST node of @huggingface/jinja (its classes are not exported; their `type` tells them apart). */
interface Node {
  type: string;
  [field: string]: unknown;
}

/** Where an expression is evaluated: the names bound to the current loop items, and how its value is used. */
interface Scope {
  inLoop: boolean;
  cost: TemplateCost;
  /** Loop variables (and names set from them) of the enclosing loops: each iteration sees only its own item. */
  items: ReadonlySet<string>;
}

/** Names the node itself fills with short values (never a request's content). */
const SCALARS = new Set(["bos_token", "eos_token", "add_generation_prompt", "enable_thinking", "true", "false", "none", "True", "False", "None"]);
/** Filters whose output is at most linear in their input, given literal arguments. */
const FILTERS = new Set([
  "trim", "tojson", "length", "count", "upper", "lower", "capitalize", "title", "string", "items", "list", "first", "last", "join",
  "default", "d", "safe", "e", "escape", "replace", "dictsort", "sort", "reverse", "selectattr", "rejectattr", "select",
  "reject", "map", "int", "float", "abs", "round", "strip",
]);
/** Methods with the same property. */
const METHODS = new Set([
  "strip", "lstrip", "rstrip", "split", "startswith", "endswith", "replace", "items", "keys", "values", "get", "upper", "lower", "title", "capitalize",
]);
const FUNCTIONS = new Set(["raise_exception", "namespace", "strftime_now"]);
const TESTS = new Set(["==", "!=", "<", ">", "<=", ">=", "and", "or", "not"]);

/** What bounds a provably linear template's render: how many values it outputs per item. */
export interface TemplateCost {
  /** Request values (message fields, tools) the template outputs, filters or joins, counted in its text. */
  references: number;
}

/** The request's size as a render sees it. */
export interface RenderShape {
  /** Messages, tool calls and tools: what the template's loops walk. */
  items: number;
  /** Characters of every text and tool definition in the request. */
  textChars: number;
}

/** Worst-case characters out of one value (tojson writes a control character as \u0000). */
const EXPANSION = 6;

/**
 * The cost of a chat template whose render is provably linear in its input, or undefined when it
 * cannot be proven: no macros, call blocks, `range` or `*`; loops only over `messages` or `tools`
 * (filtered or sliced) and, inside them, over the item's `tool_calls`; inside a loop nothing is
 * output, filtered or searched but the loop's own items (other values only in comparisons, e.g.
 * `messages[loop.index0 - 1].role == 'tool'`); filter and method arguments short string literals.
 */
export function linearTemplateCost(template: string): TemplateCost | undefined {
  let program: Node;
  try {
    program = new Template(template).parsed as unknown as Node;
  } catch {
    return undefined;
  }
  const cost: TemplateCost = { references: 0 };
  return statements(program.body, { inLoop: false, items: new Set(), cost }) ? cost : undefined;
}

/**
 * Most characters a linear template can render for a request: each loop iteration writes at most
 * the template's own text, each reference at most the whole request's text (expanded).
 */
export function renderBound(template: string, cost: TemplateCost, shape: RenderShape): number {
  return (shape.items + 1) * template.length + cost.references * EXPANSION * shape.textChars;
}

function statements(body: unknown, scope: Scope): boolean {
  if (!Array.isArray(body)) return false;
  const items = new Set(scope.items);
  return (body as Node[]).every((node) => statement(node, { ...scope, items }, items));
}

/** `items` is the block's own set: a `set` from a loop item adds its name to it. */
function statement(node: Node, scope: Scope, items: Set<string>): boolean {
  switch (node.type) {
    case "Comment":
    case "Break":
    case "Continue":
      return true;
    case "If":
      return expression(node.test as Node, scope, true) && statements(node.body, scope) && statements(node.alternate, scope);
    case "For": {
      const iterable = node.iterable as Node;
      // Loops walk the request's lists, never a string or a dict (one iteration per character or key).
      if (scope.inLoop ? !(rootedAt(iterable, scope.items) && isToolCalls(iterable)) : !isRequestList(iterable)) return false;
      if (!expression(iterable, scope, false)) return false;
      const loopItems = new Set([...scope.items, "loop", ...names(node.loopvar as Node)]);
      return statements(node.body, { ...scope, inLoop: true, items: loopItems }) && statements(node.defaultBlock, scope);
    }
    case "Set": {
      const assignee = node.assignee as Node;
      if (node.value === null) return statements(node.body, scope) && assignee.type === "Identifier" && !scope.inLoop;
      if (!expression(node.value as Node, scope, false)) return false;
      if (assignee.type === "Identifier") {
        const name = String(assignee.value);
        // A name set from the current item is an item too; one set from anything else is not.
        if (scope.inLoop && rootedAt(node.value as Node, scope.items)) items.add(name);
        else items.delete(name);
        return true;
      }
      // `ns.x = …`: a namespace attribute, read later as a free value.
      return assignee.type === "MemberExpression" && expression(assignee.object as Node, scope, true);
    }
    default:
      return expression(node, scope, false);
  }
}

/**
 * `test`: the value is only compared or tested (`==`, `and`, `is defined`), so a free value
 * costs the same however large it is.
 */
function expression(node: Node, scope: Scope, test: boolean): boolean {
  const sub = (child: unknown, childTest = false) => expression(child as Node, scope, childTest);
  switch (node.type) {
    case "StringLiteral":
    case "IntegerLiteral":
    case "FloatLiteral":
      return true;
    case "ArrayLiteral":
    case "TupleLiteral":
      return (node.value as Node[]).every((item) => sub(item));
    case "ObjectLiteral":
      return [...(node.value as Map<Node, Node>)].every(([key, value]) => sub(key) && sub(value));
    case "Identifier": {
      const name = String(node.value);
      if (name === "range") return false;
      if (!test && !SCALARS.has(name) && name !== "loop") scope.cost.references++;
      return !scope.inLoop || test || SCALARS.has(name) || scope.items.has(name);
    }
    case "MemberExpression":
      if (scope.inLoop && !test && !rootedAt(node, scope.items) && !SCALARS.has(rootName(node) ?? "")) return false;
      if (!test && rootName(node) !== "loop") scope.cost.references++;
      return memberChain(node, scope);
    case "UnaryExpression":
      return sub(node.argument, test);
    case "BinaryExpression": {
      const operator = String((node.operator as { value: string }).value);
      if (operator === "*" || operator === "**") return false;
      const keepsTest = test && TESTS.has(operator);
      // Comparisons and logic only compare their operands; `in` searches, `+`/`~` build values.
      const operandsTest = TESTS.has(operator) && operator !== "and" && operator !== "or" ? true : keepsTest;
      return sub(node.left, operandsTest) && sub(node.right, operandsTest);
    }
    case "TestExpression":
      return sub(node.operand, true);
    case "Ternary":
      return sub(node.condition, true) && sub(node.trueExpr, test) && sub(node.falseExpr, test);
    case "SelectExpression":
      return sub(node.test, true) && sub(node.lhs, test);
    case "FilterExpression": {
      const filter = node.filter as Node;
      const call = filter.type === "CallExpression" ? filter : undefined;
      const name = call ? calleeName(call.callee as Node) : filter.type === "Identifier" ? String(filter.value) : undefined;
      if (name === undefined || !FILTERS.has(name)) return false;
      if (call && !literalArguments(name, call.args)) return false;
      return sub(node.operand);
    }
    case "CallExpression": {
      const callee = node.callee as Node;
      if (callee.type === "Identifier") return FUNCTIONS.has(String(callee.value)) && (node.args as Node[]).every((arg) => sub(arg));
      if (callee.type !== "MemberExpression" || callee.computed) return false;
      const method = callee.property as Node;
      return method.type === "Identifier" && METHODS.has(String(method.value)) && literalArguments(String(method.value), node.args) && sub(callee.object);
    }
    case "SliceExpression":
      return [node.start, node.stop, node.step].every((part) => part === undefined || sub(part));
    case "KeywordArgumentExpression":
      return sub(node.value);
    default:
      return false;
  }
}

/** A member chain (`a.b[c].d`): its computed indexes are values of their own. */
function memberChain(node: Node, scope: Scope): boolean {
  for (let at = node; at.type === "MemberExpression"; at = at.object as Node) {
    const property = at.property as Node;
    // An index only picks an element (a test-like use); a slice copies, so only outside loops.
    if (at.computed && !(property.type === "SliceExpression" ? !scope.inLoop && expression(property, scope, false) : expression(property, scope, true))) return false;
    const object = at.object as Node;
    if (object.type !== "MemberExpression") return object.type === "Identifier" ? String(object.value) !== "range" : expression(object, scope, false);
  }
  return true;
}

function rootName(node: Node): string | undefined {
  let at = node;
  while (at.type === "MemberExpression" || at.type === "FilterExpression") at = (at.type === "MemberExpression" ? at.object : at.operand) as Node;
  return at.type === "Identifier" ? String(at.value) : undefined;
}

/** Whether the value comes from one of `items` (through members and filters). */
function rootedAt(node: Node, items: ReadonlySet<string>): boolean {
  const root = rootName(node);
  return root !== undefined && items.has(root);
}

/** `messages` or `tools`, perhaps filtered or sliced (`messages[::-1]`). */
function isRequestList(node: Node): boolean {
  let at = node;
  while (at.type === "FilterExpression" || (at.type === "MemberExpression" && (at.property as Node).type === "SliceExpression")) {
    at = (at.type === "FilterExpression" ? at.operand : at.object) as Node;
  }
  return at.type === "Identifier" && (at.value === "messages" || at.value === "tools");
}

/** `x.tool_calls` or `x['tool_calls']`. */
function isToolCalls(node: Node): boolean {
  if (node.type !== "MemberExpression") return false;
  const property = node.property as Node;
  return (property.type === "Identifier" && !node.computed) || property.type === "StringLiteral" ? String(property.value) === "tool_calls" : false;
}

function names(loopvar: Node): string[] {
  if (loopvar.type === "Identifier") return [String(loopvar.value)];
  if (loopvar.type === "TupleLiteral") return (loopvar.value as Node[]).flatMap(names);
  return [];
}

function calleeName(callee: Node): string | undefined {
  return callee.type === "Identifier" ? String(callee.value) : undefined;
}

/**
 * Arguments that keep a filter or method linear: short string literals (numbers could be widths,
 * as in `tojson(indent=…)`); `join` puts its separator between every item, so it must be tiny,
 * and `replace` may not put more text in than it takes out.
 */
function literalArguments(name: string, args: unknown): boolean {
  if (!Array.isArray(args)) return false;
  const strings: string[] = [];
  for (const arg of args as Node[]) {
    const value = arg.type === "KeywordArgumentExpression" ? (arg.value as Node) : arg;
    if (value.type !== "StringLiteral") return false;
    strings.push(String(value.value));
  }
  if (strings.some((text) => text.length > 64)) return false;
  if (name === "join") return (strings[0] ?? "").length <= 4;
  if (name === "replace") return strings.length === 2 && strings[0]!.length > 0 && strings[1]!.length <= strings[0]!.length;
  return true;
}
