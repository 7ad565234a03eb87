"""Finding Const nodes in the main graph and in library functions; structural checks."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from minigraph import GraphError, read_graph
from minigraph.graph import check_graph, iter_consts
from minigraph.schema import GraphDef

from conftest import FIXTURES, MODELS


@pytest.mark.parametrize("model", MODELS)
def test_finds_exactly_the_consts_tensorflow_listed(model, expected):
    names = [ref.name for ref in iter_consts(read_graph(FIXTURES / model))]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(expected[model]["consts"])


def test_library_consts_are_named_function_slash_node():
    graph_def = read_graph(FIXTURES / "tf2_functions.pb")
    functions = {f.signature.name for f in graph_def.library.function}
    library = [ref for ref in iter_consts(graph_def) if ref.function is not None]
    assert library, "the TF2 fixture keeps float Consts inside its function bodies"
    for ref in library:
        assert ref.function in functions
        assert ref.name == f"{ref.function}/{ref.node.name}"
    assert any(ref.tensor.dtype == 1 and len(ref.tensor.tensor_content) >= 4 * 256
               for ref in library)


def _graph(text: str) -> GraphDef:
    return text_format.Parse(text, GraphDef())


def test_hostconst_counts_and_other_ops_do_not():
    graph_def = _graph("""
        node { name: 'a' op: 'HostConst' attr { key: 'value' value { tensor { dtype: DT_FLOAT } } } }
        node { name: 'b' op: 'Placeholder' }
        node { name: 'c' op: 'Const' attr { key: 'value' value { tensor { dtype: DT_INT32 } } } }
    """)
    assert [ref.name for ref in iter_consts(graph_def)] == ["a", "c"]


def test_const_without_a_tensor_is_an_error_naming_it():
    graph_def = _graph("node { name: 'k' op: 'Const' attr { key: 'dtype' value { type: DT_FLOAT } } }")
    with pytest.raises(GraphError, match="'k'.*no tensor"):
        list(iter_consts(graph_def))
    assert "value" not in graph_def.node[0].attr  # looking did not insert an empty attr


def test_function_inputs_may_name_arguments_and_node_outputs():
    check_graph(_graph("""
        library { function {
          signature { name: 'f' input_arg { name: 'x' type: DT_FLOAT } }
          node_def { name: 'k' op: 'Const' }
          node_def { name: 'y' op: 'AddV2' input: 'x' input: 'k:output:0' input: '^k' }
        } }"""))
    with pytest.raises(GraphError, match="library function 'f'.*'z'"):
        check_graph(_graph("""
            library { function { signature { name: 'f' }
              node_def { name: 'y' op: 'Identity' input: 'z' } } }"""))


def test_control_inputs_and_output_indices_are_accepted():
    check_graph(_graph("""
        node { name: 'a' op: 'NoOp' }
        node { name: 'b' op: 'Identity' input: 'a:1' input: '^a' }"""))


@pytest.mark.parametrize("text", [
    # A node name, function name, op and input with line breaks and a forged second error line.
    r"node { name: 'a\nminigraph: error: forged' op: 'Const' }",
    r"node { name: 'a\r' op: 'NoOp' } node { name: 'a\r' op: 'NoOp' }",
    r"node { name: 'a' op: 'NoOp' input: 'b\n\x1b[2K' }",
    r"node { name: '' op: 'x\ny' }",
    r"library { function { signature { name: 'f\n' } node_def { name: 'k' op: 'Const' } } }",
])
def test_names_from_the_file_are_escaped_so_a_message_stays_one_line(text):
    graph_def = _graph(text)
    with pytest.raises(GraphError) as caught:
        check_graph(graph_def)
        list(iter_consts(graph_def))
    message = str(caught.value)
    assert message.isprintable(), message
    assert r"\n" in message or r"\r" in message


def test_const_ref_place_escapes_node_and_function_names():
    # Built in Python: protobuf's text format reads \u escapes only from version 4.22 on.
    graph_def = GraphDef()
    function = graph_def.library.function.add()
    function.signature.name = "f\u2028g"
    node = function.node_def.add(name="k\tl", op="Const")
    node.attr["value"].tensor.dtype = 1  # DT_FLOAT
    (ref,) = iter_consts(graph_def)
    assert ref.place == r"node 'k\tl' in library function 'f\u2028g'"
