using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>
/// The options `smooth` and `awq` share for the checks after writing: the held-out comparison (--verify-data,
/// --verify-samples, --verify-length, --no-verify, --task) and --latency, and the one way they become <see cref="VerifyOptions"/>
/// within the model's context limit.
/// </summary>
internal sealed class VerificationArguments
{
    public Option<string?> Data { get; } = new("--verify-data") { Description = "Held-out data for verification, in the formats of --data: text, .jsonl or .ids (token ids need no tokenizer), or .npz arrays. Default: Persuasion, never used for calibration." };

    public Option<int> Samples { get; } = new("--verify-samples") { Description = "Held-out samples: sentences for encoders (default 256), windows of --verify-length tokens for causal LMs (default 16).", DefaultValueFactory = _ => 0 };

    public Option<int> Length { get; } = new("--verify-length") { Description = "Tokens per held-out window for causal LMs (at most the model's context).", DefaultValueFactory = _ => 256 };

    public Option<bool> Skip { get; } = new("--no-verify") { Description = "Skip the held-out comparison." };

    public Option<int> Latency { get; } = new("--latency") { Description = "Also time one inference of this many tokens with both models (0: off).", DefaultValueFactory = _ => 0 };

    /// <summary>--task: how the model is measured (causal LM or encoder); by default from the graph's structure.</summary>
    public TaskOption Task { get; } = new();

    public IEnumerable<Option> All => [Data, Samples, Length, Task.Option, Skip, Latency];

    public bool Enabled(ParseResult parse) => !parse.GetValue(Skip);

    /// <summary>The options as a recipe's verification settings (--verify-length only when given: the default is clamped).</summary>
    public VerificationSettings Settings(ParseResult parse) => new()
    {
        Enabled = Enabled(parse),
        Data = parse.GetValue(Data),
        Samples = parse.GetValue(Samples) is > 0 and var count ? count : null,
        Length = ContextLengths.Explicit(parse, Length) ? parse.GetValue(Length) : null,
        Task = Task.Value(parse),
    };

    /// <summary>
    /// The held-out check's settings: windows of the given length (clamped to <paramref name="limit"/> with a notice when
    /// it is the default, refused above it when given; <paramref name="lengthName"/> names it) for a causal LM; an
    /// encoder's sentences are cut to the limit instead.
    /// </summary>
    public static VerifyOptions Options(VerificationSettings settings, string lengthName, SessionSettings session, string? tokenizer, ContextLimit? limit,
        bool causal, string modelPath, TextWriter notices)
    {
        var options = new VerifyOptions { TextPath = settings.Data, TokenizerPath = tokenizer, Task = settings.Task, Session = session };
        if (settings.Samples is { } count)
            options = options with { Sentences = count, Windows = count };
        int length = settings.Length ?? VerificationSettings.DefaultLength;
        if (length < 2)
            throw new OnnxQuantException(null, $"{lengthName} must be at least 2", ExitCode.Usage);
        if (settings.Enabled && causal)
            length = ContextLengths.Resolve(settings.Length, VerificationSettings.DefaultLength, lengthName, limit, modelPath, notices, "verifying on windows of");
        return options with
        {
            WindowLength = length,
            MaxSentenceTokens = limit is null ? options.MaxSentenceTokens : Math.Min(options.MaxSentenceTokens, limit.Length),
        };
    }
}
