import type { ChatWrapper, ChatWrapperGenerateContextStateOptions, ChatWrapperGeneratedContextState, LlamaModel, LlamaText, Token } from "node-llama-cpp";

/**
 * A conversation rendered by its chat wrapper and tokenized, once. The engine needs the prompt's
 * tokens before generating (to pick the sequence that holds its longest prefix, size the answer and
 * count usage); node-llama-cpp's LlamaChat then renders the same history with the same wrapper and
 * tokenizes it again, which for a Jinja template and a long conversation costs milliseconds before
 * the first token. The wrapper returned here gives LlamaChat the first rendering, and its text the
 * first tokens, when it asks for an equal history (same items, functions and options); any other
 * rendering (after the answer started, a context shift) is done as usual.
 */
export function renderPromptOnce(
  wrapper: ChatWrapper,
  model: LlamaModel,
  options: ChatWrapperGenerateContextStateOptions,
): { tokens: Token[]; chatWrapper: ChatWrapper } {
  const state = wrapper.generateContextState(options);
  const tokens = state.contextText.tokenize(model.tokenizer);
  const key = renderKey(options);
  const contextText = Object.create(state.contextText) as LlamaText;
  contextText.tokenize = (tokenizer, tokenizeOptions) =>
    tokenizer === model.tokenizer && tokenizeOptions === undefined ? tokens.slice() : state.contextText.tokenize(tokenizer, tokenizeOptions);
  const rendered: ChatWrapperGeneratedContextState = { ...state, contextText };

  const chatWrapper = Object.create(wrapper) as ChatWrapper;
  chatWrapper.generateContextState = (asked: ChatWrapperGenerateContextStateOptions) =>
    renderKey(asked) === key ? rendered : wrapper.generateContextState(asked);
  return { tokens, chatWrapper };
}

/** What a rendering depends on; documenting function parameters only matters when there are functions. */
function renderKey(options: ChatWrapperGenerateContextStateOptions): string {
  const functions = options.availableFunctions && Object.keys(options.availableFunctions).length > 0 ? options.availableFunctions : null;
  return JSON.stringify([options.chatHistory, functions, functions ? (options.documentFunctionParams ?? null) : null]);
}
