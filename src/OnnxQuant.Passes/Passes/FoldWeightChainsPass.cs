using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;

namespace OnnxQuant.Passes;

/// <summary>
/// Folds each quantized linear's constant weight chain (Cast, Transpose, Reshape, Squeeze, Unsqueeze, Identity of one
/// constant) into a plain initializer, in the main graph and in subgraph bodies, so the rewrites that follow see an
/// ordinary linear. Exact: each step only moves or re-types values (a bf16 weight cast to fp32 becomes those fp32 values).
/// Kept linears are left alone: folding a tied LM head that stays in float would store its table twice.
/// </summary>
public sealed class FoldWeightChainsPass(LinearSelection selection) : IGraphPass
{
    public string Name => "fold-weights";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var rows = new List<PassReportRow>();
        bool changed = SubgraphBodies.RewriteAll(model.Graph, null, (graph, scope) => Fold(graph, scope, rows));
        return new PassResult(changed, rows) { Metrics = new Dictionary<string, double> { ["folded"] = rows.Count } };
    }

    private bool Fold(Graph graph, string? scope, List<PassReportRow> rows)
    {
        int before = rows.Count;
        foreach (var candidate in LinearAnalysis.ClassifyGraph(graph, scope, selection))
        {
            if (!candidate.Quantizable || candidate.WeightVia is null)
                continue;
            var node = candidate.Node;
            var chain = WeightChain.Resolve(graph, node.Input[1]).Chain!;
            string name = graph.UniqueValueName($"{chain.Root}_folded");
            graph.SetInitializer(chain.Evaluate(graph, name));
            graph.SetInput(node, 1, name);
            rows.Add(new PassReportRow(candidate.QualifiedName, new Dictionary<string, string>
            {
                ["via"] = chain.Description,
                ["weight"] = $"{ElementType.Name(chain.DataType)} [{string.Join(", ", chain.Shape)}]",
            }));
        }
        if (rows.Count == before)
            return false;
        graph.RemoveDeadNodes();
        return true;
    }
}
