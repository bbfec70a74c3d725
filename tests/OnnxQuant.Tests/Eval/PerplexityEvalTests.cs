using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Fixtures;

namespace OnnxQuant.Tests.Eval;

public class PerplexityEvalTests
{
    private static EvalOptions Options(string text, int context, int stride, int maxTokens, string? reference = null) => new()
    {
        TextPath = text,
        TokenizerPath = EvalTestData.AustenTokenizer,
        ReferencePath = reference,
        Context = context,
        Stride = stride,
        MaxTokens = maxTokens,
        Session = new SessionSettings { Device = ExecutionDevice.Cpu, Threads = 1 },
    };

    /// <summary>The test's own sliding window: token t is predicted in the earliest window (starts every stride) that holds it at position >= 1.</summary>
    private static (double Nll, int Scored) IndependentLoss(string model, int[] ids, int context, int stride)
    {
        using var runner = EvalTestData.Runner(model);
        var cache = new Dictionary<int, float[]>();
        int lastStart = (ids.Length - context) / stride * stride;
        double nll = 0;
        int scored = 0;
        for (int t = 1; t < lastStart + context; t++)
        {
            int start = t < context ? 0 : ((t - context) / stride + 1) * stride;
            if (start > t - 1)
                continue; // with stride = context, a window's first token is nobody's prediction
            if (!cache.TryGetValue(start, out var logits))
                cache[start] = logits = EvalTestData.Logits(runner, ids[start..(start + context)]);
            int vocab = logits.Length / context;
            nll += EvalTestData.Loss(logits.AsSpan((t - start - 1) * vocab, vocab), ids[t]);
            scored++;
        }
        return (nll, scored);
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(64, 24)]
    public void PerplexityEqualsAnIndependentLogSoftmaxOverTheSameWindows(int context, int stride)
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0), folder.Path);
        string text = EvalTestData.PersuasionExcerpt(folder, 6000);
        var tokenizer = TokenizerLoader.Load(EvalTestData.AustenTokenizer, model);
        Assert.Empty(tokenizer.Prefix);
        var ids = tokenizer.Encode(File.ReadAllText(text)).Take(400).ToArray();
        Assert.Equal(400, ids.Length);

        var report = Evaluator.Run(model, Options(text, context, stride, 400));

        var (nll, scored) = IndependentLoss(model, ids, context, stride);
        var p = report.Perplexity!;
        Assert.Equal(scored, p.ScoredTokens);
        Assert.Equal(400, p.StreamTokens);
        Assert.Equal(Math.Exp(nll / scored), p.Perplexity, Math.Exp(nll / scored) * 1e-9);
        // A random fixture is close to uniform over 4096 tokens, but not equal to it.
        Assert.InRange(p.Perplexity, 1000, 20000);
        Assert.NotEqual(4096, p.Perplexity, 1.0);
        Assert.Null(report.Embedding);
        Assert.Null(p.ReferencePerplexity);
    }

    [Fact]
    public void AgainstAReferenceReportsBothPerplexitiesTopOneAgreementAndLogitError()
    {
        using var folder = new TempFolder();
        string model = FixtureModels.Save(EvalTestData.Lm(0), folder.Path, "a.onnx");
        string other = FixtureModels.Save(EvalTestData.Lm(1), folder.Path, "b.onnx");
        string text = EvalTestData.PersuasionExcerpt(folder, 4000);
        var ids = TokenizerLoader.Load(EvalTestData.AustenTokenizer, model).Encode(File.ReadAllText(text)).Take(192).ToArray();

        var report = Evaluator.Run(model, Options(text, 64, 64, 192, reference: other));
        var self = Evaluator.Run(model, Options(text, 64, 64, 192, reference: model));

        double nllA = 0, nllB = 0, diff = 0, norm = 0;
        int agree = 0, scored = 0;
        using (var ra = EvalTestData.Runner(model))
        using (var rb = EvalTestData.Runner(other))
            for (int start = 0; start + 64 <= 192; start += 64)
            {
                var a = EvalTestData.Logits(ra, ids[start..(start + 64)]);
                var b = EvalTestData.Logits(rb, ids[start..(start + 64)]);
                for (int p = 1; p < 64; p++, scored++)
                {
                    var rowA = a.AsSpan((p - 1) * 4096, 4096);
                    var rowB = b.AsSpan((p - 1) * 4096, 4096);
                    nllA += EvalTestData.Loss(rowA, ids[start + p]);
                    nllB += EvalTestData.Loss(rowB, ids[start + p]);
                    if (EvalTestData.ArgMax(rowA) == EvalTestData.ArgMax(rowB)) agree++;
                    for (int v = 0; v < 4096; v++)
                    {
                        diff += Math.Pow(rowA[v] - rowB[v], 2);
                        norm += (double)rowB[v] * rowB[v];
                    }
                }
            }

        var r = report.Perplexity!;
        Assert.Equal(189, scored);
        Assert.Equal(Math.Exp(nllA / scored), r.Perplexity, Math.Exp(nllA / scored) * 1e-9);
        Assert.Equal(Math.Exp(nllB / scored), r.ReferencePerplexity!.Value, Math.Exp(nllB / scored) * 1e-9);
        Assert.Equal((double)agree / scored, r.Top1Agreement!.Value, 12);
        Assert.Equal(Math.Sqrt(diff / norm), r.RelativeError!.Value, 1e-6);
        Assert.True(r.RelativeError > 0.1, $"two differently seeded fixtures should differ, got {r.RelativeError}");

        var s = self.Perplexity!;
        Assert.Equal((1.0, 0.0, 0.0), (s.Top1Agreement!.Value, s.RelativeError!.Value, s.RelativeIncrease!.Value));
        Assert.Equal(r.Perplexity, s.Perplexity, 12);
    }
}
