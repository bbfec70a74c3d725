using OnnxQuant.Fixtures;

namespace OnnxQuant.Bench.Schemes;

/// <summary>A model the bench quantizes, and how to calibrate and evaluate it.</summary>
internal sealed record BenchModel(
    string Name,
    string ModelPath,
    bool IsEncoder,
    string? Tokenizer,
    int CalibrationTokens,
    string Description,
    string[] EvalArgs)
{
    /// <summary>--tokenizer when the tokenizer does not sit beside the model.</summary>
    public string[] TokenizerArgs => Tokenizer is null ? [] : ["--tokenizer", Tokenizer];
}

/// <summary>What a scheme's pass command needs.</summary>
internal sealed record PassInputs(BenchModel Model, string StatsPath, string OutputPath);

/// <summary>A quantization scheme: the `onnxquant` arguments that produce it (null for the FP32 original).</summary>
internal sealed record Scheme(string Name, string Label, Func<PassInputs, string[]>? PassArgs)
{
    /// <summary>Activation rows per tensor its --stats keep: GPTQ's H gets `calibrate --sample-rows 2048`, the others the default 512.</summary>
    public int SampleRows { get; init; } = 512;
}

/// <summary>The models and schemes of the bench, and the settings of full and --quick runs.</summary>
internal static class BenchPlan
{
    public const int PrefillTokens = 512;

    /// <summary>SmoothQuant's fixed alpha: the published Llama-2 value (docs/architecture.md, "SmoothQuant").</summary>
    public const string FixedAlpha = "0.85";

    public static IReadOnlyList<Scheme> Schemes { get; } =
    [
        new("fp32", "FP32", null),
        new("w8a8-naive", "W8A8 naive (no smoothing)", p => Smooth(p, "--alpha", "none")),
        new("w8a8-sq", $"W8A8 SmoothQuant a={FixedAlpha}", p => Smooth(p, "--alpha", FixedAlpha)),
        new("w8a8-sq-auto", "W8A8 SmoothQuant auto alpha", p => Smooth(p, "--alpha", "auto")),
        // The same scheme in the form ONNX Runtime's CPU kernels run fast (u8 x s8); the CUDA EP runs only s8 x s8.
        new("w8a8-sq-auto-u8", "W8A8 SmoothQuant auto, uint8 activations (CPU)", p => Smooth(p, "--alpha", "auto", "--uint8-activations")),
        new("w4-rtn-g128", "W4 RTN g128", p => ["awq", p.Model.ModelPath, "-o", p.OutputPath, "--method", "rtn", "--group-size", "128", "--no-verify", "--device", "cpu", "--json"]),
        new("w4-awq-g128", "W4 AWQ g128", p => Awq(p)),
        new("w4-gptq-g128", "W4 GPTQ g128", p => ["awq", p.Model.ModelPath, "-o", p.OutputPath, "--method", "gptq", "--group-size", "128", "--stats", p.StatsPath, "--no-verify", "--device", "cpu", "--json"])
            { SampleRows = GptqSampleRows },
        new("w4-awq-gptq-g128", "W4 AWQ-GPTQ g128", p => ["awq", p.Model.ModelPath, "-o", p.OutputPath, "--method", "awq-gptq", "--group-size", "128", "--stats", p.StatsPath, "--no-verify", "--device", "cpu", "--json"])
            { SampleRows = GptqSampleRows },
        // What `awq --bits-budget 5` does with nothing else given: AWQ-GPTQ rounding, auto dampening, the model-output
        // ranking where affordable (all three models here). The second row ranks by each linear's own output instead.
        new("mixed-bits5-g128", "Mixed 4/8/float, --bits-budget 5 (defaults: AWQ-GPTQ, model-output ranking)", p => ["awq", p.Model.ModelPath, "-o", p.OutputPath, "--bits-budget", "5", "--stats", p.StatsPath, "--no-verify", "--device", "cpu", "--json", .. p.Model.TokenizerArgs])
            { SampleRows = GptqSampleRows },
        new("mixed-bits5-linear-g128", "Mixed 4/8/float, --bits-budget 5 --sensitivity linear", p => ["awq", p.Model.ModelPath, "-o", p.OutputPath, "--bits-budget", "5", "--sensitivity", "linear", "--stats", p.StatsPath, "--no-verify", "--device", "cpu", "--json"])
            { SampleRows = GptqSampleRows },
        // --target cpu: MatMulNBits accuracy_level 4 (int8 compute) with symmetric blocks, the CPU's fast kernels.
        new("w4-awq-g128-cpu", "W4 AWQ g128, --target cpu (accuracy_level 4, symmetric)", p => Awq(p, "--target", "cpu")),
        // Issue 14: the vocabulary tables. MiniLM keeps ~47 MB of its 54 MB W4 size in the FP32 token embedding.
        new("w4-awq-g128-emb4", "W4 AWQ g128 + 4-bit embeddings", p => Awq(p, "--quantize-embeddings", "4")),
        new("w4-awq-g128-head8", "W4 AWQ g128 + 8-bit LM head", p => Awq(p, "--include-lm-head", "--lm-head-bits", "8")),
        new("w4-awq-g128-head4", "W4 AWQ g128 + 4-bit LM head", p => Awq(p, "--include-lm-head", "--lm-head-bits", "4")),
        new("w8a8-sq-auto-outliers6", "W8A8 SmoothQuant auto, --float-outliers 6", p => Smooth(p, "--alpha", "auto", "--float-outliers", "6")),
    ];

    /// <summary>What `onnxquant awq` keeps when it calibrates for GPTQ itself (CalibrationSettings.GptqSampleRows, the default of a recipe that rounds with GPTQ or plans bits).</summary>
    public const int GptqSampleRows = 2048;

    private static string[] Awq(PassInputs p, params string[] more) =>
        ["awq", p.Model.ModelPath, "-o", p.OutputPath, "--method", "awq", "--group-size", "128", "--stats", p.StatsPath, "--no-verify", "--device", "cpu", "--json", .. more];

    private static string[] Smooth(PassInputs p, params string[] smoothing) =>
        ["smooth", p.Model.ModelPath, "-o", p.OutputPath, .. smoothing, "--stats", p.StatsPath, "--no-verify", "--device", "cpu", "--json"];

    public static IReadOnlyList<BenchModel> Models(string root, string outFolder, bool quick)
    {
        string austen = Path.Combine(root, "models", "austen-lm");
        string[] lmEval = quick ? ["--max-tokens", "8192"] : [];
        return
        [
            new("austen-lm", Path.Combine(austen, "model.onnx"), false, null, 256,
                "7.2M-parameter Llama-style LM trained on five Austen novels; perplexity on the held-out Persuasion (non-overlapping 256-token windows)",
                lmEval),
            new("austen-lm-outliers", Path.Combine(outFolder, "austen-lm-outliers", "model.onnx"), false, austen, 256,
                $"the Austen LM with 3 hidden channels of every RMSNorm gamma x{OutlierTwin.Factor:0} and the consuming weight rows / {OutlierTwin.Factor:0} (same FP32 function, LLM-like activation outliers)",
                lmEval),
            new("minilm", Path.Combine(root, "models", "minilm", "model.onnx"), true, null, 128,
                "all-MiniLM-L6-v2 sentence encoder; mean-pooled embedding cosine to FP32 and nearest-neighbour agreement on Persuasion sentences",
                ["--sentences", quick ? "64" : "256"]),
            new("tiny-llama", Path.Combine(root, "models", "tiny-llama", "model.onnx"), false, austen, 256,
                "synthetic fixture (random weights, 3 outlier channels x50); its perplexity is meaningless in itself, its change and top-1 agreement are error measures",
                ["--max-tokens", quick ? "4096" : "16384"]),
        ];
    }
}
