using System.Diagnostics;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Passes;

/// <summary>Runs passes in order, validates the graph after each one and collects their reports.</summary>
public sealed class Pipeline
{
    private readonly List<IGraphPass> _passes = new();

    public Pipeline Add(IGraphPass pass)
    {
        _passes.Add(pass);
        return this;
    }

    public IReadOnlyList<IGraphPass> Passes => _passes;

    public IReadOnlyList<PipelineStep> Run(OnnxModel model, PassContext context)
    {
        ModelChecks.EnsureComputable(model);
        var steps = new List<PipelineStep>();
        for (int i = 0; i < _passes.Count; i++)
        {
            var pass = _passes[i];
            context.Cancellation.ThrowIfCancellationRequested();
            context.FinalPass = i == _passes.Count - 1;
            var clock = Stopwatch.StartNew();
            PassResult result;
            try
            {
                result = pass.Run(model, context);
            }
            catch (OnnxQuantException e) when (e.File is null && model.SourcePath is not null)
            {
                // A pass knows the tensor or node at fault, the pipeline knows the file: the message names both.
                throw new OnnxQuantException(model.SourcePath, e.Problem, e.ExitCode, e.InnerException ?? e);
            }
            finally
            {
                context.FinalPass = false;
            }
            clock.Stop();
            LargeAllocations.AfterPass();
            if (context.ValidateAfterEachPass && result.Changed)
                GraphValidator.Validate(model.Graph, $"after pass {pass.Name}");
            if (context.CheckIndexes && model.Graph.IndexMismatches() is { Count: > 0 } wrong)
                throw new InvalidOperationException($"pass {pass.Name} left the graph's indexes wrong (an edit bypassed Graph): {string.Join("; ", wrong.Take(5))}");
            steps.Add(new PipelineStep(pass.Name, result, clock.Elapsed));
        }
        // After the last pass: no weight a rewrite replaced stays behind unread (a body's rewrite leaves its outer one).
        if (steps.Any(s => s.Result.Changed))
            UnusedInitializers.Remove(model.Graph);
        return steps;
    }
}

public sealed record PipelineStep(string Pass, PassResult Result, TimeSpan Elapsed);
