using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Statistics;

namespace OnnxQuant.Tests.Support;

/// <summary>Runs passes the way the commands do: through a <see cref="Pipeline"/> that carries the calibration as analyses.</summary>
internal static class PassRun
{
    /// <summary>The analyses a pipeline starts from: the statistics and the activation ranges derived from them.</summary>
    public static AnalysisStore Analyses(CalibrationStats? stats)
    {
        var analyses = new AnalysisStore();
        stats ??= new CalibrationStats("none", new CalibrationInfo(), []);
        analyses.Set(stats);
        analyses.Set(ActivationRanges.From(stats));
        return analyses;
    }

    /// <summary>Runs <paramref name="passes"/> in order on <paramref name="model"/>; returns the analyses with the passes' reports.</summary>
    public static AnalysisStore Apply(OnnxModel model, CalibrationStats? stats, params IGraphPass[] passes)
    {
        var analyses = Analyses(stats);
        var pipeline = new Pipeline();
        foreach (var pass in passes)
            pipeline.Add(pass);
        pipeline.Run(model, new PassContext { Analyses = analyses });
        return analyses;
    }
}
