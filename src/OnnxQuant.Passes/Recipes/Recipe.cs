using OnnxQuant.Analysis;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;

namespace OnnxQuant.Recipes;

/// <summary>
/// A quantization written down (docs/recipes.md): the declared passes with their options, which linears each rewrite
/// gets, the calibration and verification settings and the accuracy gates. `run` reads one from a file; `smooth` and
/// `awq` build one from their options (<see cref="RecipePresets"/>); both run it the same way.
/// </summary>
/// <param name="Passes">The passes in order with their options; their selections are placeholders, <see cref="Pipeline"/> gives each its linears.</param>
public sealed record Recipe(IReadOnlyList<PassSpec> Passes, LinearAssignment Linears, CalibrationSettings Calibration,
    VerificationSettings Verification, GateBounds Gates)
{
    public const int Version = 1;

    /// <summary>
    /// The runnable pipeline: each pass gets the selection of its scheme (fold-weights every quantized linear), and the
    /// searches measure the error of the rewrite that follows them (SmoothQuant the w8a8 entry's fake-quantization, AWQ
    /// the w4-rewrite entry's blocks), as <see cref="RecipePresets"/> puts them together.
    /// </summary>
    public PipelineSpec Pipeline()
    {
        // An included head at its own bits (the embeddings pass' lmHeadBits) is left out of every other pass.
        int? headBits = LmHeadBits;
        var w8a8 = Linears.SelectionFor(LinearScheme.W8A8).WithLmHeadBits(headBits);
        var w4 = Linears.SelectionFor(LinearScheme.W4).WithLmHeadBits(headBits);
        var binding = RecipeBinding.Of(Passes, w8a8, w4, QuantizedLinears());
        return new PipelineSpec(Passes.Select(pass => PassRegistry.For(pass).Bind(pass, binding)).ToList());
    }

    /// <summary>
    /// The bits of the LM head when <see cref="LinearAssignment.IncludeLmHead"/> and the embeddings pass gives it its own
    /// (lmHeadBits); null when the head, if included, goes with the other linears of its scheme.
    /// </summary>
    public int? LmHeadBits => Linears.IncludeLmHead ? Passes.Select(p => p.OwnLmHeadBits).FirstOrDefault(b => b is not null) : null;

    /// <summary>Every linear some pass quantizes, the head at its own bits marked as such (what fold-weights prepares and the linear table shows).</summary>
    public LinearSelection QuantizedLinears() => Linears.Quantized().WithLmHeadBits(LmHeadBits);

    /// <summary>The rewrite pass a scheme sends its linears to, or null for float.</summary>
    public static string? RewriteOf(LinearScheme scheme) => scheme switch
    {
        LinearScheme.W8A8 => "w8a8",
        LinearScheme.W4 => "w4-rewrite",
        _ => null,
    };

    /// <summary>
    /// Activation rows kept per tensor when calibrating: <see cref="CalibrationSettings.SampleRows"/> when given, else
    /// <see cref="CalibrationSettings.GptqSampleRows"/> for a recipe that rounds with GPTQ or plans bits (H = XᵀX needs rows
    /// well beyond K, and the plan holds a quarter back), else <see cref="CalibrationSettings.DefaultSampleRows"/>.
    /// </summary>
    public int SampleRows => Calibration.SampleRows
        ?? (Passes.Any(p => p.NeedsHeldOutRows || p.NeedsHessianRows)
            ? CalibrationSettings.GptqSampleRows
            : CalibrationSettings.DefaultSampleRows);

    /// <summary>True when a rewrite rounds with GPTQ, which builds H = XᵀX from the sampled rows.</summary>
    public bool RoundsWithGptq => Passes.Any(p => p.NeedsHessianRows);

    /// <summary>
    /// <see cref="SampleRows"/> for a model whose widest quantized linear has <paramref name="widestK"/> inputs: GPTQ gets
    /// at least <see cref="CalibrationSettings.GptqRowsNeeded"/> rows, so that H has full rank.
    /// </summary>
    public int SampleRowsFor(int widestK) =>
        Calibration.SampleRows ?? Math.Max(SampleRows, RoundsWithGptq ? CalibrationSettings.GptqRowsNeeded(widestK) : 0);

    /// <summary>The recipe with its <see cref="BitsSensitivity.Auto"/> rankings settled for a model of this size.</summary>
    public Recipe WithSensitivityFor(int linears, long parameters) => this with
    {
        Passes = Passes.Select(p => p.ForModelSize(linears, parameters)).ToList(),
    };
}

/// <summary>Where a recipe sends a linear.</summary>
public enum LinearScheme
{
    /// <summary>Int8 weights and activations: the w8a8 pass (after smoothquant, when there is one).</summary>
    W8A8,
    /// <summary>4-bit weights: the awq search (when there is one) and the w4-rewrite pass.</summary>
    W4,
    /// <summary>Kept in floating point.</summary>
    Float,
}

/// <summary>One override of a recipe: linears whose node name matches <see cref="Match"/> (glob or /regex/) get <see cref="Scheme"/>.</summary>
public sealed record SchemeOverride(string Match, LinearScheme Scheme);

/// <summary>
/// Which scheme each linear gets: the override its name matches (at most one may), else <see cref="Default"/>; the LM head
/// stays in float unless <see cref="IncludeLmHead"/>.
/// </summary>
public sealed record LinearAssignment(LinearScheme Default, bool IncludeLmHead, IReadOnlyList<SchemeOverride> Overrides)
{
    private const string Source = "the recipe";

    /// <summary>The linears of <paramref name="scheme"/>: all but other schemes' overrides when it is the default, else only its own overrides.</summary>
    public LinearSelection SelectionFor(LinearScheme scheme) => Default == scheme
        ? new LinearSelection(Overrides.Where(o => o.Scheme != scheme).Select(o => o.Match), IncludeLmHead, source: Source)
        : new LinearSelection([], IncludeLmHead, Overrides.Where(o => o.Scheme == scheme).Select(o => o.Match), Source);

    /// <summary>Every linear some rewrite quantizes (what fold-weights prepares).</summary>
    public LinearSelection Quantized() => Default != LinearScheme.Float
        ? new LinearSelection(Overrides.Where(o => o.Scheme == LinearScheme.Float).Select(o => o.Match), IncludeLmHead, source: Source)
        : new LinearSelection([], IncludeLmHead, Overrides.Where(o => o.Scheme != LinearScheme.Float).Select(o => o.Match), Source);

    /// <summary>
    /// The linears two overrides match, as (first override index, second override index, linear name); empty when the
    /// overrides are disjoint on <paramref name="names"/>.
    /// </summary>
    public IReadOnlyList<(int First, int Second, string Linear)> Overlaps(IEnumerable<string> names)
    {
        var found = new List<(int, int, string)>();
        foreach (var name in names)
        {
            var matching = Enumerable.Range(0, Overrides.Count).Where(i => LinearSelection.Matches(Overrides[i].Match, name)).ToList();
            if (matching.Count > 1)
                found.Add((matching[0], matching[1], name));
        }
        return found;
    }
}

/// <summary>The statistics a recipe's passes read (docs/recipes.md, "Calibration").</summary>
public sealed record CalibrationSettings
{
    public IReadOnlyList<string> Data { get; init; } = [];

    public string? Stats { get; init; }

    public string? Tokenizer { get; init; }

    public int Samples { get; init; } = 128;

    /// <summary>Tokens per sample; null for the default by task (<see cref="DefaultSeqLenFor"/>), clamped to the model's context.</summary>
    public int? SeqLen { get; init; }

    public int Seed { get; init; }

    /// <summary>Activation rows kept per tensor; null for the recipe's default (<see cref="Recipe.SampleRows"/>).</summary>
    public int? SampleRows { get; init; }

    /// <summary>Tokens per window for a causal LM: long running text, as it reads when generating.</summary>
    public const int DefaultSeqLen = 512;

    /// <summary>
    /// Tokens per window for an encoder: paragraph-sized, as sentence encoders are used; calibrated on 512-token windows
    /// of running text, an encoder sees attention patterns it never meets in use (docs/architecture.md, "Calibration and verification data").
    /// </summary>
    public const int DefaultEncoderSeqLen = 128;

    /// <summary>The window length when none is given, by what the model computes.</summary>
    public static int DefaultSeqLenFor(ModelTask task) => task == ModelTask.Encoder ? DefaultEncoderSeqLen : DefaultSeqLen;

    /// <summary>How the default windows are described in the calibration line.</summary>
    public static string DefaultWindowsFor(ModelTask task) =>
        task == ModelTask.Encoder ? "paragraph-sized windows for an encoder" : "long windows for a causal LM";

    /// <summary>Enough rows for AWQ's and SmoothQuant's searches.</summary>
    public const int DefaultSampleRows = 512;

    /// <summary>Rows for GPTQ and mixed precision: 512 rows gave MiniLM a held-out cosine of 0.964 under GPTQ, 2048 gave 0.973.</summary>
    public const int GptqSampleRows = 2048;

    /// <summary>
    /// Rows GPTQ needs for a linear of <paramref name="k"/> inputs: H = XᵀX from fewer than K rows is singular, and the
    /// directions no row spans are held only by the dampening (docs/architecture.md, "GPTQ").
    /// </summary>
    public static int GptqRowsNeeded(int k) => k;
}

/// <summary>The held-out check after writing (docs/recipes.md, "Verification").</summary>
public sealed record VerificationSettings
{
    public bool Enabled { get; init; } = true;

    public string? Data { get; init; }

    /// <summary>Sentences (encoders) or windows (causal LMs); null for the defaults.</summary>
    public int? Samples { get; init; }

    /// <summary>Tokens per window for causal LMs; null for the default (256, clamped to the model's context).</summary>
    public int? Length { get; init; }

    public ModelTask? Task { get; init; }

    public const int DefaultLength = 256;
}
