using Onnx;

namespace OnnxQuant.IR;

/// <summary>
/// The mutable graph the passes work on: nodes (ONNX <see cref="NodeProto"/>s), graph inputs/outputs, value infos and
/// initializers as <see cref="Tensor"/>s. Producer and consumer indexes are rebuilt lazily after each edit, so a pass
/// can ask them at any time. Subgraphs of If/Loop/Scan stay inside their node's attributes, untouched; the names they read
/// from the outer scope count as uses, so such values are never removed or rewritten from under them.
/// </summary>
public sealed class Graph
{
    private readonly List<NodeProto> _nodes;
    private readonly Dictionary<string, Tensor> _initializers;
    private GraphIndex? _index;
    private readonly HashSet<string> _usedNodeNames = new(StringComparer.Ordinal);
    private readonly HashSet<string> _usedValueNames = new(StringComparer.Ordinal);

    public Graph(string name, IEnumerable<NodeProto> nodes, IEnumerable<ValueInfoProto> inputs, IEnumerable<ValueInfoProto> outputs,
        IEnumerable<Tensor> initializers, IEnumerable<ValueInfoProto>? valueInfo = null, string? docString = null)
    {
        Name = name;
        DocString = docString ?? "";
        _nodes = nodes.ToList();
        Inputs = inputs.ToList();
        Outputs = outputs.ToList();
        ValueInfo = (valueInfo ?? Array.Empty<ValueInfoProto>()).ToList();
        _initializers = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var t in initializers)
            _initializers[t.Name] = t;
        foreach (var n in _nodes)
        {
            _usedNodeNames.Add(n.Name);
            foreach (var o in n.Output) _usedValueNames.Add(o);
        }
        foreach (var v in Inputs) _usedValueNames.Add(v.Name);
        foreach (var k in _initializers.Keys) _usedValueNames.Add(k);
        foreach (var n in _nodes)
            ReserveBodyNames(n);
    }

    // A new value must not shadow a name a body defines (ONNX names are unique across scopes), nor the reverse.
    private void ReserveBodyNames(NodeProto node)
    {
        foreach (var body in SubgraphScope.Subgraphs(node))
        {
            foreach (var v in body.Input) _usedValueNames.Add(v.Name);
            foreach (var t in body.Initializer) _usedValueNames.Add(t.Name);
            foreach (var inner in body.Node)
            {
                foreach (var o in inner.Output) _usedValueNames.Add(o);
                ReserveBodyNames(inner);
            }
        }
    }

    /// <summary>Marks names as taken (a body reserves its enclosing graphs' names, so what it adds never shadows them).</summary>
    public void ReserveValueNames(IEnumerable<string> names) => _usedValueNames.UnionWith(names);

    /// <summary>Every value name this graph has used or reserved.</summary>
    public IReadOnlyCollection<string> UsedValueNames => _usedValueNames;

    public string Name { get; set; }

    public string DocString { get; set; }

    public IReadOnlyList<NodeProto> Nodes => _nodes;

    public List<ValueInfoProto> Inputs { get; }

    public List<ValueInfoProto> Outputs { get; }

    /// <summary>Shape/type annotations of intermediate values, kept as loaded (a rewrite drops the ones it invalidates).</summary>
    public List<ValueInfoProto> ValueInfo { get; }

    public IReadOnlyDictionary<string, Tensor> Initializers => _initializers;

    public bool IsGraphOutput(string value) => Outputs.Any(o => o.Name == value);

    public bool IsGraphInput(string value) => Inputs.Any(i => i.Name == value);

    // ---- initializers ----

    public Tensor? GetInitializer(string name) => _initializers.GetValueOrDefault(name);

    /// <summary>
    /// Where new large initializers go instead of managed memory (null: keep them in memory). Set it for big models so a
    /// pass holds only the tensor it is working on.
    /// </summary>
    public SpillFile? Spill { get; set; }

    /// <summary>Initializers of at least this many bytes are spilled when <see cref="Spill"/> is set.</summary>
    public long SpillThreshold { get; set; } = 1 << 20;

    public void SetInitializer(Tensor tensor)
    {
        if (Spill is not null && !tensor.IsOnDisk && tensor.ByteLength >= SpillThreshold)
            tensor = Spill.Write(tensor);
        _initializers[tensor.Name] = tensor;
        _usedValueNames.Add(tensor.Name);
    }

    /// <summary>A value whose content is known without running the graph: an initializer or a Constant node's output.</summary>
    public Tensor? GetConstant(string name)
    {
        if (_initializers.TryGetValue(name, out var t) && !IsGraphInput(name))
            return t;
        var producer = Producer(name);
        if (producer is { OpType: "Constant", Domain: "" or "ai.onnx" })
        {
            var attr = producer.Attribute.FirstOrDefault(a => a.Name == "value");
            if (attr?.T is not null)
                return new TensorProtoReader(".").Read(attr.T).Renamed(name);
        }
        // A body reads the enclosing graph's constants by name unless it defines the name itself.
        if (Outer is not null && producer is null && !_initializers.ContainsKey(name) && !IsGraphInput(name))
            return Outer.GetConstant(name);
        return null;
    }

    /// <summary>For an If/Loop/Scan body: the graph whose values it reads by name (its outer scope); null for the main graph.</summary>
    public Graph? Outer { get; init; }

    // ---- indexes ----

    /// <summary>The node that outputs <paramref name="value"/>, or null for graph inputs, initializers and unknown names.</summary>
    public NodeProto? Producer(string value) => Index.Producer(value);

    /// <summary>Every node that reads <paramref name="value"/>, including nodes whose subgraphs read it.</summary>
    public IReadOnlyList<NodeProto> Consumers(string value) => Index.Consumers(value);

    private GraphIndex Index => _index ??= new GraphIndex(_nodes);

    /// <summary>
    /// Where the maintained producer/consumer indexes disagree with indexes built afresh from the nodes; empty when every
    /// edit kept them right. The pipeline asks this after every pass when <c>CheckIndexes</c> is on (tests, Debug builds).
    /// </summary>
    public IReadOnlyList<string> IndexMismatches() => _index is null ? [] : _index.Mismatches(_nodes);

    /// <summary>The node's explicit inputs plus the outer-scope names its subgraphs read.</summary>
    public static IEnumerable<string> NodeInputs(NodeProto node)
    {
        foreach (var i in node.Input)
            if (i.Length > 0)
                yield return i;
        foreach (var outer in SubgraphScope.OuterReferences(node))
            yield return outer;
    }

    // ---- edits: every change to a node of this graph goes through one of these, so the indexes stay right ----

    /// <summary>A node name not used yet in this graph, derived from <paramref name="hint"/>.</summary>
    public string UniqueNodeName(string hint) => Unique(hint, _usedNodeNames);

    /// <summary>A value name not used yet in this graph, derived from <paramref name="hint"/>.</summary>
    public string UniqueValueName(string hint) => Unique(hint, _usedValueNames);

    private static string Unique(string hint, HashSet<string> used)
    {
        if (hint.Length > 0 && used.Add(hint))
            return hint;
        for (int i = 1; ; i++)
        {
            string candidate = $"{hint}_{i}";
            if (used.Add(candidate))
                return candidate;
        }
    }

    /// <summary>Adds a node (its name made unique if needed). Order in the node list is fixed by <see cref="SortTopologically"/>.</summary>
    public NodeProto AddNode(NodeProto node)
    {
        if (node.Name.Length == 0 || _usedNodeNames.Contains(node.Name))
            node.Name = UniqueNodeName(node.Name.Length == 0 ? node.OpType : node.Name);
        else
            _usedNodeNames.Add(node.Name);
        foreach (var o in node.Output) _usedValueNames.Add(o);
        _nodes.Add(node);
        _index?.Add(node);
        return node;
    }

    public void RemoveNode(NodeProto node)
    {
        // By reference: protobuf messages compare by value, and two nodes may look alike.
        int at = _nodes.FindIndex(n => ReferenceEquals(n, node));
        if (at < 0)
            throw new InvalidOperationException($"node '{node.Name}' is not in graph '{Name}'");
        _nodes.RemoveAt(at);
        _index?.Remove(node);
    }

    /// <summary>Removes <paramref name="old"/> and adds <paramref name="replacement"/> under the old node's name.</summary>
    public NodeProto ReplaceNode(NodeProto old, NodeProto replacement)
    {
        RemoveNode(old);
        replacement.Name = old.Name; // still reserved in _usedNodeNames, and now free in the node list
        foreach (var o in replacement.Output) _usedValueNames.Add(o);
        _nodes.Add(replacement);
        _index?.Add(replacement);
        return replacement;
    }

    /// <summary>Points input <paramref name="index"/> of <paramref name="node"/> at <paramref name="value"/>.</summary>
    public void SetInput(NodeProto node, int index, string value) =>
        Edit(node, () => node.Input[index] = value);

    /// <summary>Points every input of <paramref name="node"/> that reads <paramref name="from"/> at <paramref name="to"/>.</summary>
    public void ReplaceInput(NodeProto node, string from, string to) => Edit(node, () =>
    {
        for (int i = 0; i < node.Input.Count; i++)
            if (node.Input[i] == from)
                node.Input[i] = to;
    });

    /// <summary>Renames output <paramref name="index"/> of <paramref name="node"/> (a value nothing reads yet, or whose readers follow).</summary>
    public void RenameOutput(NodeProto node, int index, string name)
    {
        _usedValueNames.Add(name);
        Edit(node, () => node.Output[index] = name);
    }

    /// <summary>Replaces the subgraph held by attribute <paramref name="attribute"/> of <paramref name="node"/>.</summary>
    public void SetSubgraph(NodeProto node, string attribute, GraphProto body)
    {
        var attr = node.Attribute.FirstOrDefault(a => a.Name == attribute && a.G is not null)
            ?? throw new InvalidOperationException($"{node.Describe()} has no subgraph attribute '{attribute}'");
        Edit(node, () => attr.G = body);
        ReserveBodyNames(node);
    }

    private void Edit(NodeProto node, Action edit)
    {
        if (_index is null)
        {
            edit();
            return;
        }
        var before = NodeInputs(node).ToHashSet(StringComparer.Ordinal);
        var outputsBefore = node.Output.ToList();
        edit();
        _index.Update(node, before, outputsBefore);
    }

    /// <summary>Removes nodes none of whose outputs is used, then initializers nothing reads. Returns how many nodes went.</summary>
    public int RemoveDeadNodes()
    {
        int removed = 0;
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int i = _nodes.Count - 1; i >= 0; i--)
            {
                var node = _nodes[i];
                bool used = node.Output.Any(o => o.Length > 0 && (IsGraphOutput(o) || Consumers(o).Count > 0));
                if (!used)
                {
                    RemoveNode(node);
                    removed++;
                    changed = true;
                }
            }
        }
        RemoveUnusedInitializers();
        return removed;
    }

    /// <summary>Removes initializers no node reads (a body's read counts for its owner), kept when a graph input or output names them. Returns how many went.</summary>
    public int RemoveUnusedInitializers()
    {
        int removed = 0;
        foreach (var name in _initializers.Keys.ToList())
            if (Consumers(name).Count == 0 && !IsGraphOutput(name) && !IsGraphInput(name) && _initializers.Remove(name))
                removed++;
        return removed;
    }

    /// <summary>Orders the node list so every node follows its producers. Throws when the graph has a cycle.</summary>
    public void SortTopologically()
    {
        var order = TopologicalOrder();
        _nodes.Clear();
        _nodes.AddRange(order); // the indexes do not depend on the order
    }

    /// <summary>The nodes in dependency order, keeping the current order among independent nodes (Kahn's algorithm).</summary>
    public List<NodeProto> TopologicalOrder()
    {
        var indegree = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        var position = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _nodes.Count; i++)
        {
            var node = _nodes[i];
            position[node] = i;
            indegree[node] = NodeInputs(node).Distinct().Count(v => Producer(v) is { } p && !ReferenceEquals(p, node));
        }
        var ready = new PriorityQueue<NodeProto, int>();
        foreach (var (node, deg) in indegree)
            if (deg == 0) ready.Enqueue(node, position[node]);
        var result = new List<NodeProto>(_nodes.Count);
        while (ready.TryDequeue(out var node, out _))
        {
            result.Add(node);
            foreach (var o in node.Output.Where(o => o.Length > 0).Distinct())
                foreach (var c in Consumers(o))
                    if (!ReferenceEquals(c, node) && --indegree[c] == 0)
                        ready.Enqueue(c, position[c]);
        }
        if (result.Count != _nodes.Count)
        {
            var stuck = _nodes.Where(n => indegree[n] > 0).Take(5).Select(n => $"'{n.Name}' ({n.OpType})");
            throw new GraphValidationException($"graph '{Name}' has a cycle through {string.Join(", ", stuck)}");
        }
        return result;
    }
}

public sealed class GraphValidationException : Exception
{
    public GraphValidationException(string message) : base(message) { }
}
