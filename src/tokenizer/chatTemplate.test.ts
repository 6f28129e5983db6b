import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";
import { ModelLoadError } from "../errors.js";
import { ChatTemplate } from "./chatTemplate.js";

const FILE = "/m/chat_template.jinja";
const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hi there" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "What is 2+2?  \n" },
];

/**
 * Asserts that rendering `source` fails with a one-line ModelLoadError naming
 * the file and matching `re`, within 500 ms and without growing the
 * process's peak memory by 64 MiB.
 */
function refusedCheaply(source: string, re: RegExp, context: Record<string, unknown> = { messages }): void {
  const template = new ChatTemplate(source, FILE);
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  const start = performance.now();
  assert.throws(
    () => template.render(context),
    (e: unknown) => {
      assert.ok(e instanceof ModelLoadError, String(e));
      assert.ok((e as Error).message.startsWith(`${FILE}: `), (e as Error).message);
      assert.ok(!(e as Error).message.includes("\n"), (e as Error).message);
      assert.match((e as Error).message, re);
      return true;
    },
  );
  const ms = performance.now() - start;
  const grown = process.resourceUsage().maxRSS * 1024 - peakBefore;
  assert.ok(ms < 500, `took ${ms.toFixed(0)} ms`);
  assert.ok(grown < 64 * 2 ** 20, `peak memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
}

describe("chat templates render as the library renders them", () => {
  const templates: Record<string, string> = {
    "the default model's": readFileSync(new URL("../../models/wgkv-tiny-chat/chat_template.jinja", import.meta.url), "utf8"),
    "Qwen-style (namespace, reversed loop, string methods, loop vars)":
      "{%- set ns = namespace(last=-1) %}{%- for m in messages[::-1] %}{%- if m.role == 'user' and ns.last == -1 %}{%- set ns.last = messages|length - 1 - loop.index0 %}{%- endif %}{%- endfor %}" +
      "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}{% if loop.index0 == ns.last %} (last user){% endif %}<|im_end|>\n{%- endfor %}" +
      "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}{{ 'a-b-c'.split('-') | join('+') }}{{ 'x\ny' | indent(2, true) }}{{ 'aXb'.replace('X', '--') }}{{ messages[0] | tojson }}",
    "Mistral-style (macros, raise_exception unused, ranges, filters)":
      "{% macro turn(m) %}[{{ m.role | upper }}] {{ m.content }}{% endmacro %}{{ bos_token }}{% for i in range(messages | length) %}{{ turn(messages[i]) }}{% if i % 2 == 1 %}</s>{% endif %}{% endfor %}" +
      "{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}{% if messages | length > 100 %}{{ raise_exception('too many') }}{% endif %}",
  };
  for (const [name, source] of Object.entries(templates)) {
    test(name, () => {
      const context = { messages, add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" };
      assert.equal(new ChatTemplate(source, FILE).render(context), new Template(source).render(context));
    });
  }

  test("strftime_now gives today's date as Python does (English month names)", () => {
    const out = new ChatTemplate("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %%') }}", FILE).render({ messages });
    const now = new Date();
    const month = now.toLocaleString("en-US", { month: "long" });
    assert.equal(out, `${String(now.getDate()).padStart(2, "0")} ${month.slice(0, 3)} ${now.getFullYear()}|${month} %`);
  });

  test("a template that raises, or fails, gives a one-line error naming the file", () => {
    assert.throws(() => new ChatTemplate("{{ raise_exception('Conversation roles must alternate\\nuser/assistant') }}", FILE).render({ messages }), (e: unknown) =>
      e instanceof ModelLoadError && e.message === `${FILE}: the chat template failed to render (Conversation roles must alternate user/assistant)`);
    assert.throws(() => new ChatTemplate("{% for m in messages %}", FILE), /^ModelLoadError: \/m\/chat_template\.jinja: cannot parse the chat template/);
  });
});

describe("hostile chat templates are refused in milliseconds, without a large allocation", () => {
  test("range(1000000000) and range(100000000): refused before the list is made", () => {
    refusedCheaply("{% for i in range(1000000000) %}x{% endfor %}", /exceeds its rendering budget \(range\(\) of 1000000000 items with \d+ steps left\)/);
    refusedCheaply("{% for i in range(100000000) %}{% endfor %}", /range\(\) of 100000000 items/);
    refusedCheaply("{% for i in range(0, 2000000000, 2) %}{% endfor %}", /range\(\) of 1000000000 items/);
    refusedCheaply("{{ range(1e9) }}", /failed to render \(range\(\) takes 1 to 3 integers/);
  });

  test("nested loops: the steps run out", () => {
    refusedCheaply("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", /exceeds its rendering budget \((more than \d+ steps|range\(\) of 10000 items with \d+ steps left)\)/);
  });

  test("string doubling, list doubling, and a list that repeats one long string", () => {
    const doubling = (init: string, op: string) => `{% set ns = namespace(s=${init}) %}{% for i in range(60) %}{% set ns.s = ${op} %}{% endfor %}{{ ns.s }}`;
    refusedCheaply(doubling("'ab'", "ns.s ~ ns.s"), /a value of more than \d+ characters or items/);
    refusedCheaply(doubling("'ab'", "ns.s + ns.s"), /a value of more than \d+ characters or items/);
    refusedCheaply(doubling("[1]", "ns.s + ns.s"), /a value of more than \d+ characters or items/);
    // 1000 copies of a 100 KB string are only 1000 references, but printing them makes 100 MB
    refusedCheaply(
      "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [messages[0].content] %}{% endfor %}{{ ns.l }}",
      /a value of more than \d+ characters or items/,
      { messages: [{ role: "user", content: "x".repeat(100_000) }] },
    );
  });

  test("output that adds up: many copies of the input", () => {
    refusedCheaply("{% for i in range(3000) %}{{ messages[0].content }}{% endfor %}", /more than \d+ characters made in all/, { messages: [{ role: "user", content: "y".repeat(50_000) }] });
  });

  test("filters and methods that amplify in one call: replace, indent, join, tojson", () => {
    const big = { messages: [{ role: "user", content: "z".repeat(200_000) }] };
    refusedCheaply("{{ messages[0].content | replace('', messages[0].content) }}", /replace would make \d+ characters/, big);
    refusedCheaply("{{ messages[0].content.replace('z', messages[0].content) }}", /replace would make \d+ characters/, big);
    refusedCheaply("{{ (messages[0].content | replace('z', '\\n')) | indent(100000) }}", /indent would make \d+ characters/, big);
    refusedCheaply("{{ 'x' | indent(300000000) }}", /indent would make 300000001 characters/);
    refusedCheaply("{{ range(1000) | join(messages[0].content) }}", /join would make \d+ characters/, big);
    refusedCheaply("{{ messages | tojson(indent=100000000) }}", /tojson indent 100000000, more than 16/);
    // replace reached another way than s.replace(...) cannot be sized first: refused
    refusedCheaply("{% set s = messages[0].content %}{{ s['replace']('z', s) }}", /a string's replace taken other than as s\.replace\(old, new\)/, big);
    refusedCheaply("{% set s = messages[0].content %}{% set r = s.replace %}{{ r('z', s) }}", /a string's replace taken other than as s\.replace\(old, new\)/, big);
  });

  test("recursion: a macro that calls itself", () => {
    refusedCheaply("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", /nesting deeper than 256/);
  });

  test("the budget grows with the input: a long real conversation still renders", () => {
    const long = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `message ${i} `.repeat(50) }));
    const source = readFileSync(new URL("../../models/wgkv-tiny-chat/chat_template.jinja", import.meta.url), "utf8");
    const context = { messages: long, add_generation_prompt: true, bos_token: "<s>" };
    assert.equal(new ChatTemplate(source, FILE).render(context), new Template(source).render(context));
  });
});
