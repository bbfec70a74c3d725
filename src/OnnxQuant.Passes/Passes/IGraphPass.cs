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

    /// <summary>Receives (pass name, done, total) as a pass works through its items.</summary>
    public IProgress<PassProgress>? Progress { get; init; }

    /// <summary>Run <see cref="IR.GraphValidator"/> after every pass (always in tests; behind a flag in release).</summary>
    public bool ValidateAfterEachPass { get; init; } = true;
}

public readonly record struct PassProgress(string Pass, int Done, int Total, string? Item = null);
