using OnnxQuant.Analysis;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>Renders a <see cref="ModelDiff"/> for a terminal (diff --nodes): counts first, then names grouped by op, long lists cut short.</summary>
public static class DiffPrinter
{
    private const int MaxNamesPerOp = 6;
    private const int MaxTableRows = 20;

    /// <summary>The two files and their sizes; "no differences" when the graphs are identical.</summary>
    public static void PrintHeader(IAnsiConsole console, ModelDiff d)
    {
        console.WriteLine($"before  {d.Before.Path ?? "(in memory)"}  {Size(d.Before)}");
        console.WriteLine($"after   {d.After.Path ?? "(in memory)"}  {Size(d.After)}  {Format.Percent(d.Before.TotalBytes, d.After.TotalBytes)}");
        if (d.IsEmpty)
            console.WriteLine("no differences: nodes, initializers, opsets and graph inputs/outputs are identical");
        foreach (var v in d.GraphValues)
            console.WriteLine($"graph {v.Kind} {v.Name}: {Value(v.Before)} -> {Value(v.After)}");
    }

    /// <summary>The provenance entries (docs/recipes.md) of both models: same, or the fields that differ.</summary>
    public static void PrintProvenance(IAnsiConsole console, IReadOnlyList<OnnxQuant.Recipes.ProvenanceChange> changes)
    {
        if (changes.Count == 0)
            return;
        var table = new Table().Border(TableBorder.Simple).Title("provenance").AddColumns("key", "before", "after");
        foreach (var c in changes)
        {
            string verdict = c.Same ? "same" : c.Differences.Count > 0 ? "differs: " + Format.Names(c.Differences, 6) : "differs";
            table.AddRow(Markup.Escape(c.Key), Markup.Escape(Short(c.Before)), Markup.Escape(c.Same ? verdict : $"{Short(c.After)} ({verdict})"));
        }
        console.Write(table);
    }

    private static string Short(string? value) => value is null ? "-" : value.Length <= 40 ? value : value[..39] + "…";

    /// <summary>The raw lists (--nodes): nodes and initializers by name.</summary>
    public static void Print(IAnsiConsole console, ModelDiff d)
    {

        console.WriteLine();
        console.WriteLine($"nodes {d.NodesBefore} -> {d.NodesAfter}: {d.NodesAdded.Count} added, {d.NodesRemoved.Count} removed, {d.NodesRewritten.Count} rewritten");
        PrintNodes(console, "added", d.NodesAdded, n => n.Name);
        PrintNodes(console, "removed", d.NodesRemoved, n => n.Name);
        PrintNodes(console, "rewritten", d.NodesRewritten,
            n => $"{n.Name} ({(n.OpBefore != n.Op ? $"was {n.OpBefore}; " : "")}{string.Join(", ", n.Changed)})");

        console.WriteLine();
        console.WriteLine($"initializers: {d.InitializersAdded.Count} added, {d.InitializersRemoved.Count} removed, {d.InitializersChanged.Count} changed");
        PrintTensors(console, "added", d.InitializersAdded);
        PrintTensors(console, "removed", d.InitializersRemoved);
        PrintTensors(console, "changed", d.InitializersChanged);
    }

    private static string Size(ModelFiles f) =>
        f.ExternalData.Count == 0
            ? Format.Bytes(f.TotalBytes)
            : $"{Format.Bytes(f.TotalBytes)} (model {Format.Bytes(f.ModelBytes)} + data {Format.Bytes(f.ExternalDataBytes)})";

    private static string Value(ValueSummary? v) => v is null ? "(none)" : $"{v.Dtype} {v.ShapeText}";

    private static void PrintNodes(IAnsiConsole console, string title, IReadOnlyList<NodeChange> nodes, Func<NodeChange, string> label)
    {
        if (nodes.Count == 0)
            return;
        console.WriteLine($"  {title}:");
        foreach (var group in nodes.GroupBy(n => n.Op).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal))
            console.WriteLine($"    {group.Key} x{group.Count()}: {Format.Names(group.Select(label), MaxNamesPerOp)}");
    }

    private static void PrintTensors(IAnsiConsole console, string title, IReadOnlyList<InitializerChange> tensors)
    {
        if (tensors.Count == 0)
            return;
        var table = new Table().Border(TableBorder.Simple).Title(title);
        bool changed = tensors[0].Before is not null && tensors[0].After is not null;
        table.AddColumns("name", changed ? "before" : "dtype shape", changed ? "after" : "bytes");
        if (changed)
            table.AddColumn("max |delta|");
        foreach (var t in tensors.Take(MaxTableRows))
        {
            if (changed)
                table.AddRow(Markup.Escape(t.Name), Markup.Escape(Info(t.Before!)), Markup.Escape(Info(t.After!)),
                    t.MaxAbsDifference is { } m ? Format.Number(m) : "");
            else
            {
                var info = (t.After ?? t.Before)!;
                table.AddRow(Markup.Escape(t.Name), Markup.Escape($"{info.Dtype} {info.ShapeText}"), Format.Bytes(info.Bytes));
            }
        }
        console.Write(table);
        if (tensors.Count > MaxTableRows)
            console.WriteLine($"    ... and {tensors.Count - MaxTableRows} more");
    }

    private static string Info(TensorInfo t) => $"{t.Dtype} {t.ShapeText} {Format.Bytes(t.Bytes)}";
}
