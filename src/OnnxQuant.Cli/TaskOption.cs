using System.CommandLine;
using OnnxQuant.Analysis;

namespace OnnxQuant.Cli;

/// <summary>
/// `--task causal-lm|encoder` of `smooth`, `awq` and `eval`: overrides what the graph's structure says the model is
/// (<see cref="ModelTaskDetection"/>), which decides how it is measured on text.
/// </summary>
internal sealed class TaskOption
{
    private const string CausalLm = "causal-lm", Encoder = "encoder";

    public Option<string?> Option { get; } = CreateOption();

    public ModelTask? Value(ParseResult parse) => parse.GetValue(Option) switch
    {
        CausalLm => ModelTask.CausalLm,
        Encoder => ModelTask.Encoder,
        _ => null,
    };

    private static Option<string?> CreateOption()
    {
        var option = new Option<string?>("--task")
        {
            Description = "How the model is measured on text: causal-lm (perplexity, top-1 agreement) or encoder (cosine of mean-pooled outputs). " +
                "Default: from the graph (an output over the vocabulary and causal attention make a causal LM).",
        };
        option.AcceptOnlyFromAmong(CausalLm, Encoder);
        return option;
    }
}
