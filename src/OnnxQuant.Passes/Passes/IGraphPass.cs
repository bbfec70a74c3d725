using OnnxQuant.IO;

namespace OnnxQuant.Passes;

/// <summary>
/// One rewrite of a model (onnxscript-rewriter style): it takes the model and says whether it changed it.
/// Passes never parse options; the CLI builds them with their settings.
/// </summary>
public interface IGraphPass
{
    string Name { get; }

    PassResult Run(OnnxModel model, PassContext context);
}

/// <summary>What a pass did: whether the graph changed, and rows for the summary table.</summary>
public sealed record PassResult(bool Changed, IReadOnlyList<PassReportRow> Rows)
{
    public static PassResult Unchanged { get; } = new(false, Array.Empty<PassReportRow>());

    /// <summary>Free-form figures a pass wants in the JSON summary (e.g. seconds per layer).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}

/// <summary>One row of a pass's report: the subject (a node, a smoothing group) and named columns.</summary>
public sealed record PassReportRow(string Subject, IReadOnlyDictionary<string, string> Columns);

/// <summary>Shared services for a pass run: cancellation, progress, logging. No console here.</summary>
public sealed class PassContext
{
    public CancellationToken Cancellation { get; init; }

    /// <summary>Facts passes read (calibration statistics, activation ranges) and the reports they leave.</summary>
    public AnalysisStore Analyses { get; init; } = new();

    /// <summary>Receives (pass name, done, total) as a pass works through its items.</summary>
    public IProgress<PassProgress>? Progress { get; init; }

    /// <summary>
    /// True while a pipeline runs its last pass: the initializers that pass leaves alone are the ones the save writes as
    /// they are, so a rewrite pass may start copying them to the output before it computes (<see cref="KeptWeightCopies"/>).
    /// </summary>
    public bool FinalPass { get; internal set; }

    /// <summary>Run <see cref="IR.GraphValidator"/> after every pass (always in tests; behind a flag in release).</summary>
    public bool ValidateAfterEachPass { get; init; } = true;

    /// <summary>
    /// Compare the graph's maintained producer/consumer indexes with fresh ones after every pass: on in Debug builds and
    /// wherever ONNXQUANT_CHECK_INDEXES=1 (the test suite sets it), off otherwise (it rebuilds the indexes once per pass).
    /// </summary>
    public bool CheckIndexes { get; init; } = DefaultCheckIndexes;

    public static bool DefaultCheckIndexes =>
#if DEBUG
        true;
#else
        Environment.GetEnvironmentVariable("ONNXQUANT_CHECK_INDEXES") == "1";
#endif
}

public readonly record struct PassProgress(string Pass, int Done, int Total, string? Item = null);
